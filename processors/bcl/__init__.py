"""The built-in BCL → demultiplexed FASTQ converter (issue 11's "builtin" engine).

`convert_run` in `processors.bcl.convert` is the entry point; the modules beside it
hold the base-call formats (formats), where a run keeps them (layout), sample
sheets (sample_sheet), index matching (barcodes), FASTQ records and gzip members
(fastq) and BCL Convert's reports (reports).
"""
