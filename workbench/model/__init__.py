"""The model: formulas, designs, parameters and their true values."""
