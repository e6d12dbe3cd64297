"""Token <-> id maps that save as plain lists of strings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

PAD = "<pad>"
UNK = "<unk>"


class Vocab:
    """A fixed list of strings; id 0 is ``<pad>`` and id 1 is ``<unk>`` when ``specials`` is set."""

    def __init__(self, items: Iterable[str], *, specials: bool = True) -> None:
        self.specials = specials
        itos = [PAD, UNK] if specials else []
        seen = set(itos)
        for item in items:
            if item not in seen:
                itos.append(item)
                seen.add(item)
        self.itos = itos
        self.stoi = {s: i for i, s in enumerate(itos)}

    @classmethod
    def from_counts(cls, counts: Counter[str], *, min_count: int = 1, specials: bool = True) -> Vocab:
        """Most frequent first, ties broken alphabetically so the order is reproducible."""
        items = sorted((s for s, c in counts.items() if c >= min_count), key=lambda s: (-counts[s], s))
        return cls(items, specials=specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, item: str) -> bool:
        return item in self.stoi

    @property
    def unk_id(self) -> int:
        return 1 if self.specials else -1

    def id(self, item: str) -> int:
        """The id of ``item``; ``<unk>`` for unseen items, or -1 in a vocabulary without specials."""
        return self.stoi.get(item, self.unk_id)

    def ids(self, items: Iterable[str]) -> list[int]:
        return [self.stoi.get(item, self.unk_id) for item in items]

    def to_list(self) -> list[str]:
        """The items without the specials, for saving."""
        return self.itos[2:] if self.specials else list(self.itos)
