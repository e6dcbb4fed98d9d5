rule synthetic_archive:
    input:
        **step_code("make_synthetic"),
    output:
        "results/synthetic/DeepRockSR-{dim}D.zip",
    log:
        "results/logs/synthetic_archive_{dim}D.log",
    conda:
        "../envs/data.yaml"
    params:
        settings=lambda w: as_json(cfg.synthetic_settings(config, int(w.dim))),
    shell:
        '"$PYTHON" {input.script:q} --out {output:q} --dim {wildcards.dim}'
        " --settings {params.settings:q} > {log:q} 2>&1"


rule download:
    input:
        **step_code("download"),
    output:
        archive="results/download/DeepRockSR-{dim}D.zip",
        sha256="results/download/DeepRockSR-{dim}D.zip.sha256",
    log:
        "results/logs/download_{dim}D.log",
    conda:
        "../envs/data.yaml"
    params:
        api=config["dataset"]["portal"]["api"],
        path=lambda w: portal_path_option(int(w.dim)),
        key=lambda w: "archive" if w.dim == "2" else "archive_3d",
        timeout=config["dataset"]["portal"]["timeout_s"],
        # Setting the pin after a download does not download again (checked at start). The
        # pin is the 2D archive's. A list for :q (an empty string would vanish, leaving
        # --sha256 without its value).
        sha256=untracked(
            lambda w: (
                ["--sha256", config["dataset"]["sha256"]]
                if config["dataset"]["sha256"] and w.dim == "2"
                else []
            )
        ),
    shell:
        '"$PYTHON" {input.script:q} --out {output.archive:q}'
        " --api {params.api:q} {params.path:q} --key {params.key:q}"
        " --timeout {params.timeout:q} {params.sha256:q} > {log:q} 2>&1"


rule split:
    input:
        **step_code("split"),
        archive=lambda w: archive_path(DATA[w.data].dim),
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
