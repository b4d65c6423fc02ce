"""Illumina run folders' own formats (RunInfo.xml, …), read with no app's help."""
