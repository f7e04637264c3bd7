"""Tests of deploy/: Prometheus config, alert rules, the dashboard, the deploy files."""
