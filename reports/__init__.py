"""Tables, plots and the paper comparison of one experiment (python -m reports.tables, reports.plots)."""

# The figures reports.plots writes (each as PNG and PDF) and the tables of our own results reports.tables
# writes beside the papers' (each as CSV and LaTeX); the pipeline declares them as outputs.
PLOTS = ("tradeoff", "p_sweep", "ablation", "training", "convergence", "claims", "qualitative")
OWN_TABLES = ("cross", "complexity", "convergence", "per_class", "claims")
