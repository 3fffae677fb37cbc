"""Language-model code: build the model, its loss, its data, the forward-gradient estimate (imports torch).

With calibrate/, fl/ and emulate/, the only room that imports torch; those three import it, it imports none
of them."""
