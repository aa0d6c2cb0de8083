"""GraphQL and the web around repository/, in rooms by concern; imports only go down."""
