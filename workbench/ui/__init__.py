"""Panel components and Bokeh charts shared by the apps and the notebooks."""
