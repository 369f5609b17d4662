"""The dependency-free core every other package stands on.

Standard library only. It holds what all layers share: the error hierarchy
(:mod:`labcore.errors`), trial outcomes (:mod:`labcore.outcomes`), trial results
(:mod:`labcore.results`) and budgets (:mod:`labcore.budget`). It imports no other
package of this project; ``vradam`` ← ``workers`` ← ``studies`` ← ``service`` stand on it
and import downwards only (``tests/test_layering.py`` checks both).
"""
