"""One append-only event log for every plane: admin audit, authentication, sessions, DNS."""
