"""Deployment environments (staging, production, ...): their databases and migrations."""
