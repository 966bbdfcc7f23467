"""One package per paper id, `studies/<paper id>/`: everything only that paper uses (its data preparation, arms,
tables, figures, claims and metric keys). The packages never import each other; nothing below this layer
imports them."""
