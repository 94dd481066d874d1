"""Physics: materials, detector geometry, shower observables and distribution distances."""
