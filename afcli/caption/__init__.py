"""Scene text: the scene graph (SceneVerse's rules), template captions and unique referrals, noun
phrases, and the ``afcli caption`` stage that writes them with their embeddings into the store."""
