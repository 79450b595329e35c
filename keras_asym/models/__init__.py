"""The networks (G, F, the discriminators, the mobile student), the history pool and the Keras models that train them."""
