fn main() { println!("xtask: bench"); }
