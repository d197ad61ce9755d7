"""Per-clip results (aggregation), campaign agreement reports, imports of votes."""
