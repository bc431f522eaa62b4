"""The GraphQL layer: types, inputs, payloads, resolvers, loaders, permissions, limits."""
