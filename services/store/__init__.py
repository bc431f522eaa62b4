"""The only code that speaks PyMongo: documents <-> models, indexes, batch gets."""
