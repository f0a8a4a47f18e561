"""The engine's configuration: profiles (YAML) validated into typed settings, and the backend registry."""
