"""Writers for rigged avatars: glTF binary (GLB), VRM 1.0, levels of detail, a contact sheet."""
