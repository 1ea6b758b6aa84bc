"""Hair: image features, the learned attribute model, the procedural hairstyle library and hair cards."""
