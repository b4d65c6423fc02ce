"""The Ensembl divisions, and where each one's files are.

Vertebrates are on Ensembl's own FTP site (``ENSEMBL_FTP_URL``); every other division
has a folder, named by its short name, under the Ensembl Genomes FTP root
(``ENSEMBL_GENOMES_FTP_URL``): ``fungi/release-61/...`` for ``EnsemblFungi``. The
surveyor reads Ensembl by this map, and the demo's Ensembl stand-in serves by it.
"""

VERTEBRATES = "EnsemblVertebrates"
#: Every other division -> its short name, which is its folder under the Ensembl Genomes
#: FTP root.
DIVISION_FOLDERS = {
    "EnsemblPlants": "plants",
    "EnsemblFungi": "fungi",
    "EnsemblMetazoa": "metazoa",
    "EnsemblProtists": "protists",
    "EnsemblBacteria": "bacteria",
}
#: Every division, vertebrates first.
DIVISIONS = (VERTEBRATES, *DIVISION_FOLDERS)
