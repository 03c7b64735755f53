"""What more than one tab uses: model and template choices, following a comparison, stops."""
