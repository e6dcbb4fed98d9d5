rule figure2:
    input:
        **step_code("figure2"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
        srcnn=rules.train_phase1.output.generator,
        srgan=rules.train_phase2.output.generator,
        caption=caption_path("figure2"),
    output:
        png="results/{run}/figures/figure2.png",
        pdf="results/{run}/figures/figure2.pdf",
        html=report(
            "results/{run}/figures/figure2.html",
            caption="../report/figure2.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Figure 2"},
        ),
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
        " --html {output.html:q} --caption {input.caption:q} > {log:q} 2>&1"


rule figure3:
    input:
        **step_code("figure3"),
        summary=rules.evaluate.output.summary,
        caption=caption_path("figure3"),
    output:
        png="results/{run}/figures/figure3.png",
        pdf="results/{run}/figures/figure3.pdf",
        html=report(
            "results/{run}/figures/figure3.html",
            caption="../report/figure3.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Figure 3"},
        ),
    log:
        "results/{run}/logs/figure3.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.figure_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --summary {input.summary:q}'
        " --settings {params.settings:q} --png {output.png:q} --pdf {output.pdf:q}"
        " --html {output.html:q} --caption {input.caption:q} > {log:q} 2>&1"


rule training_curves:
    input:
        **step_code("curves"),
        phase1=rules.train_phase1.output.metrics,
        phase2=rules.train_phase2.output.metrics,
        caption=caption_path("curves"),
    output:
        png="results/{run}/figures/curves.png",
        pdf="results/{run}/figures/curves.pdf",
        html=report(
            "results/{run}/figures/curves.html",
            caption="../report/curves.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Training curves"},
        ),
    log:
        "results/{run}/logs/training_curves.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.figure_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --phase1 {input.phase1:q}'
        " --phase2 {input.phase2:q} --settings {params.settings:q}"
        " --png {output.png:q} --pdf {output.pdf:q} --html {output.html:q}"
        " --caption {input.caption:q} > {log:q} 2>&1"


rule texture_figure:
    input:
        **step_code("texture_figure"),
        spectra=rules.evaluate.output.spectra,
        summary=rules.evaluate.output.summary,
        caption=caption_path("texture"),
    output:
        png="results/{run}/figures/texture.png",
        pdf="results/{run}/figures/texture.pdf",
        html=report(
            "results/{run}/figures/texture.html",
            caption="../report/texture.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Texture (spectra)"},
        ),
    log:
        "results/{run}/logs/texture_figure.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.figure_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --spectra {input.spectra:q}'
        " --summary {input.summary:q} --settings {params.settings:q}"
        " --png {output.png:q} --pdf {output.pdf:q} --html {output.html:q}"
        " --caption {input.caption:q} > {log:q} 2>&1"


# The 3D runs' figures (volumes): orthogonal slices and the rock metrics' errors.


rule orthoslices:
    input:
        **step_code("orthoslices"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
        srcnn=rules.train_phase1.output.generator,
        srgan=rules.train_phase2.output.generator,
        caption=caption_path("orthoslices"),
    output:
        png="results/{run}/figures/orthoslices.png",
        pdf="results/{run}/figures/orthoslices.pdf",
        html=report(
            "results/{run}/figures/orthoslices.html",
            caption="../report/orthoslices.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Orthogonal slices (3D)"},
        ),
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
        " --html {output.html:q} --caption {input.caption:q} > {log:q} 2>&1"


rule rock_metrics_figure:
    input:
        **step_code("rock_metrics_figure"),
        summary=rules.evaluate.output.summary,
        caption=caption_path("rock_metrics"),
    output:
        png="results/{run}/figures/rock_metrics.png",
        pdf="results/{run}/figures/rock_metrics.pdf",
        html=report(
            "results/{run}/figures/rock_metrics.html",
            caption="../report/rock_metrics.rst",
            category="Figures",
            labels={"run": "{run}", "figure": "Rock metrics (3D)"},
        ),
    log:
        "results/{run}/logs/rock_metrics_figure.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.figure_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --summary {input.summary:q}'
        " --settings {params.settings:q} --png {output.png:q} --pdf {output.pdf:q}"
        " --html {output.html:q} --caption {input.caption:q} > {log:q} 2>&1"
