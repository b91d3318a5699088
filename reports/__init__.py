"""Tables, plots and the paper comparison of one experiment (python -m reports.tables, reports.plots)."""

# The figures reports.plots writes (each as PNG and PDF); the pipeline declares them as outputs.
PLOTS = ("tradeoff", "p_sweep", "ablation", "training", "qualitative")
