"""What every domain of the schema shares: context, errors, connections, access types."""
