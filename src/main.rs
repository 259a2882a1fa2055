fn main() {
    println!("wrenmq: under construction");
}
