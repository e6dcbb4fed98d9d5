rule synthetic_archive:
    input:
        **step_code("make_synthetic"),
    output:
        "results/synthetic/DeepRockSR-2D.zip",
    log:
        "results/logs/synthetic_archive.log",
    conda:
        "../envs/data.yaml"
    params:
        settings=as_json(cfg.synthetic_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --out {output:q}'
        " --settings {params.settings:q} > {log:q} 2>&1"


rule download:
    input:
        **step_code("download"),
    output:
        archive="results/download/DeepRockSR-2D.zip",
        sha256="results/download/DeepRockSR-2D.zip.sha256",
    log:
        "results/logs/download.log",
    conda:
        "../envs/data.yaml"
    params:
        api=config["dataset"]["portal"]["api"],
        path=config["dataset"]["portal"]["path"],
        timeout=config["dataset"]["portal"]["timeout_s"],
        # Setting the pin after a download does not download again (checked at start).
        sha256=untracked(config["dataset"]["sha256"] or ""),
    shell:
        '"$PYTHON" {input.script:q} --out {output.archive:q}'
        " --api {params.api:q} --path {params.path:q} --timeout {params.timeout:q}"
        " --sha256 {params.sha256:q} > {log:q} 2>&1"


rule split:
    input:
        **step_code("split"),
        archive=archive_path(),
    output:
        manifest="results/data/{data}/manifest.csv",
        packs=directory("results/data/{data}/packs"),
    log:
        "results/logs/split_{data}.log",
    benchmark:
        "results/benchmarks/split_{data}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 4
    params:
        settings=lambda w: as_json(DATA[w.data]),
    shell:
        '"$PYTHON" {input.script:q} --archive {input.archive:q}'
        " --settings {params.settings:q} --manifest {output.manifest:q}"
        " --packs {output.packs:q} --workers {threads} > {log:q} 2>&1"
