"""Domain models, use cases and domain errors. Knows nothing of GraphQL, HTTP or OAuth."""
