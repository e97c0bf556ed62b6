"""What users meet: the CLI, the live view, reports, graphs, the dashboard and export."""
