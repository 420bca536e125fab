"""Clinical notes service: SOAP notes in PostgreSQL, guideline answers from a FAISS index."""

__version__ = "0.1.0"
