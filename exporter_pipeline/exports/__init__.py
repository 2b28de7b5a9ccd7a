"""Export definitions: the YAML spec, data sets, formats, naming, manifest and job factory."""
