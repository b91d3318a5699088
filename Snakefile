# Placeholder until the pipeline lands (issue 7): the target exists and succeeds.
rule tables:
    shell: "echo 'vss-bench: pipeline not built yet'"
