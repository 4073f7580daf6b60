"""Small models shared by two or more experiments."""
