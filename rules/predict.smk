# Your own images (docs/data.md, "Your own images"): `snakemake predict` runs super_resolve
# on predict.input, into results/predict/ with a named predict.model, else into each
# enabled run's results/{run}/predict/ with its srcnn and srgan generators.
# `snakemake export` writes every enabled run's generators as self-describing model files.


rule super_resolve:
    input:
        **step_code("predict"),
        images=lambda w: predict_image_files(),
        models=lambda w: list(predict_models(w.where).values()),
    output:
        manifest="results/{where}predict/manifest.json",
    log:
        "results/{where}logs/predict.log",
    benchmark:
        "results/{where}benchmarks/predict.tsv"
    wildcard_constraints:
        # empty (a named predict.model: results/predict/) or a run's name and a slash
        where=r"|[A-Za-z0-9][A-Za-z0-9_.-]*/",
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        settings=as_json(cfg.predict_settings(config)),
        out=lambda w, output: os.path.dirname(output.manifest),
        models=lambda w: predict_model_args(w.where),
        inputs=lambda w: predict_inputs(),
    shell:
        '"$PYTHON" {input.script:q} -o {params.out:q} {params.models:q}'
        " --settings {params.settings:q} --threads {threads} --log {log:q}"
        " --gpus {resources.gpu} -- {params.inputs:q}"


rule predict:
    input:
        lambda w: predict_targets(),


rule export_model:
    input:
        **step_code("export"),
        generator=lambda w: f"results/{w.run}/phase{METHOD_PHASES[w.method]}/generator.pt",
    output:
        model="results/{run}/export/{run}_{method}.safetensors",
        sha256="results/{run}/export/{run}_{method}.safetensors.sha256",
    log:
        "results/{run}/logs/export_{method}.log",
    wildcard_constraints:
        method="|".join(METHOD_PHASES),
    conda:
        "../envs/torch.yaml"
    params:
        settings=lambda w: as_json(
            cfg.model_card(config, w.run, METHOD_PHASES[w.method])
        ),
    shell:
        '"$PYTHON" {input.script:q} --generator {input.generator:q}'
        " --out {output.model:q} --settings {params.settings:q} --log {log:q}"


rule export:
    input:
        expand(rules.export_model.output.model, run=RUNS, method=list(METHOD_PHASES)),
