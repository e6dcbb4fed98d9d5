rule figure2:
    input:
        **step_code("figure2"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
        srcnn=rules.train_phase1.output.generator,
        srgan=rules.train_phase2.output.generator,
    output:
        png=report(
            "results/{run}/figures/figure2.png",
            caption="../report/figure2.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Figure 2"},
        ),
        pdf="results/{run}/figures/figure2.pdf",
    log:
        "results/{run}/logs/figure2.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.figure2_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --packs {input.packs:q}'
        " --srcnn {input.srcnn:q} --srgan {input.srgan:q}"
        " --settings {params.settings:q} --png {output.png:q} --pdf {output.pdf:q}"
        " > {log:q} 2>&1"


rule figure3:
    input:
        **step_code("figure3"),
        summary=rules.evaluate.output.summary,
    output:
        png=report(
            "results/{run}/figures/figure3.png",
            caption="../report/figure3.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Figure 3"},
        ),
        pdf="results/{run}/figures/figure3.pdf",
    log:
        "results/{run}/logs/figure3.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.figure_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --summary {input.summary:q}'
        " --settings {params.settings:q} --png {output.png:q} --pdf {output.pdf:q}"
        " > {log:q} 2>&1"


rule training_curves:
    input:
        **step_code("curves"),
        phase1=rules.train_phase1.output.metrics,
        phase2=rules.train_phase2.output.metrics,
    output:
        png=report(
            "results/{run}/figures/curves.png",
            caption="../report/curves.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Training curves"},
        ),
        pdf="results/{run}/figures/curves.pdf",
    log:
        "results/{run}/logs/training_curves.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.figure_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --phase1 {input.phase1:q}'
        " --phase2 {input.phase2:q} --settings {params.settings:q}"
        " --png {output.png:q} --pdf {output.pdf:q} > {log:q} 2>&1"


rule texture_figure:
    input:
        **step_code("texture_figure"),
        spectra=rules.evaluate.output.spectra,
        summary=rules.evaluate.output.summary,
    output:
        png=report(
            "results/{run}/figures/texture.png",
            caption="../report/texture.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Texture (spectra)"},
        ),
        pdf="results/{run}/figures/texture.pdf",
    log:
        "results/{run}/logs/texture_figure.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.figure_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --spectra {input.spectra:q}'
        " --summary {input.summary:q} --settings {params.settings:q}"
        " --png {output.png:q} --pdf {output.pdf:q} > {log:q} 2>&1"


# The 3D runs' figures (volumes): orthogonal slices and the rock metrics' errors.


rule orthoslices:
    input:
        **step_code("orthoslices"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
        srcnn=rules.train_phase1.output.generator,
        srgan=rules.train_phase2.output.generator,
    output:
        png=report(
            "results/{run}/figures/orthoslices.png",
            caption="../report/orthoslices.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Orthogonal slices (3D)"},
        ),
        pdf="results/{run}/figures/orthoslices.pdf",
    log:
        "results/{run}/logs/orthoslices.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.orthoslice_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --packs {input.packs:q}'
        " --srcnn {input.srcnn:q} --srgan {input.srgan:q}"
        " --settings {params.settings:q} --png {output.png:q} --pdf {output.pdf:q}"
        " > {log:q} 2>&1"


rule rock_metrics_figure:
    input:
        **step_code("rock_metrics_figure"),
        summary=rules.evaluate.output.summary,
    output:
        png=report(
            "results/{run}/figures/rock_metrics.png",
            caption="../report/rock_metrics.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Rock metrics (3D)"},
        ),
        pdf="results/{run}/figures/rock_metrics.pdf",
    log:
        "results/{run}/logs/rock_metrics_figure.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.figure_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --summary {input.summary:q}'
        " --settings {params.settings:q} --png {output.png:q} --pdf {output.pdf:q}"
        " > {log:q} 2>&1"
