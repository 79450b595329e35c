"""Drawing with a trained generator, in Keras or TFLite, behind one ``Drawer``."""
