"""Models arrive with their issue; the app is installed so its schema is part of every tenant."""
