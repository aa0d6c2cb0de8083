"""Who the caller is: verified bearer tokens (JWT) and the development user header."""
