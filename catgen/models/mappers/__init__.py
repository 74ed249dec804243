from .semantic_mapper import SemanticMapper

__all__ = ['SemanticMapper']
