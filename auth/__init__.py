"""City realms and access tokens: who is calling, decided by the token's issuer."""
