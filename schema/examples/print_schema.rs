fn main() { print!("{}", elspeth_schema::schema_gen::pipeline_schema_json()); }
