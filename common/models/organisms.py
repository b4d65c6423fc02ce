from django.db import models

from common.models.lengths import LengthChecked


class Organism(LengthChecked):
    """A species, named as NCBI's taxonomy names it."""

    scientific_name = models.CharField(max_length=255, unique=True)
    taxonomy_id = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["scientific_name"]

    def __str__(self) -> str:
        return self.scientific_name

    @classmethod
    def get_or_create_by_name(cls, scientific_name: str, taxonomy_id: int | None) -> "Organism":
        name = scientific_name.replace("_", " ").strip().capitalize()
        organism, _ = cls.objects.get_or_create(
            scientific_name=name, defaults={"taxonomy_id": taxonomy_id}
        )
        return organism
