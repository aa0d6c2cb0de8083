"""Jobs (seed 000): types, queries, lifecycle mutations and subscription fields."""
