"""Shared building blocks for the services: config, schemas, errors and DependencyProviders."""
