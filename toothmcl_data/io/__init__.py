"""Readers and writers at the edges: mesh files (STL/PLY/OBJ/VTP), label sidecars, Slicer markups, volumes."""
