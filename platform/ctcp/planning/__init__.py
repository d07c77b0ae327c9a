"""Joint planning: the capacity-building activities of Compact entities in the States, and
the coordination matrix (State x area: open needs, activities, entities, gaps, overlaps)."""
