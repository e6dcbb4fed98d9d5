rule compare:
    input:
        **step_code("compare"),
        summaries=expand(rules.evaluate.output.summary, run=RUNS),
    output:
        table=report(
            "results/compare/summary.csv",
            caption="../report/compare_table.rst",
            category="Comparison",
            labels={"table": "runs side by side (CSV)"},
        ),
        runs=report(
            "results/compare/runs.yaml",
            caption="../report/compare_runs.rst",
            category="Comparison",
            labels={"table": "settings per run (YAML)"},
        ),
        html=report(
            "results/compare/summary.html",
            caption="../report/compare_page.rst",
            category="Comparison",
            labels={"table": "runs side by side"},
        ),
        # Shown on the report's first page (report/workflow.rst).
        psnr=report(
            "results/compare/psnr.html",
            caption="../report/compare_psnr.rst",
            category="Comparison",
            labels={"table": "PSNR at a glance"},
        ),
    log:
        "results/logs/compare.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.compare_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --summaries {input.summaries:q}'
        " --settings {params.settings:q} --table {output.table:q}"
        " --runs {output.runs:q} --html {output.html:q} --psnr {output.psnr:q}"
        " > {log:q} 2>&1"


# Drawn for two runs or more (all_targets); one run's results are a row of the table.
rule compare_figure:
    input:
        **step_code("compare_figure"),
        table=rules.compare.output.table,
        caption=caption_path("compare"),
    output:
        png="results/compare/compare.png",
        pdf="results/compare/compare.pdf",
        html=report(
            "results/compare/compare.html",
            caption="../report/compare.rst",
            category="Comparison",
            labels={"table": "runs side by side (figure)"},
        ),
    log:
        "results/logs/compare_figure.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.compare_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --table {input.table:q}'
        " --settings {params.settings:q} --png {output.png:q} --pdf {output.pdf:q}"
        " --html {output.html:q} --caption {input.caption:q} > {log:q} 2>&1"
