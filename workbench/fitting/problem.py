"""`Problem`: a design with its factor structure and cross-products, everything a fit needs."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.fitting.structure import CrossProducts, Structure, build_structure, cross_products
from workbench.model.design import Design


@dataclass(frozen=True, eq=False)
class Problem:
    """A design with its factor structure and cross-products: everything a fit needs."""

    design: Design
    structure: Structure
    products: CrossProducts

    @classmethod
    def build(cls, design: Design) -> "Problem":
        structure = build_structure(design)
        return cls(design, structure, cross_products(design, structure))
