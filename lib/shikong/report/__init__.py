"""The report's figures and page: plotly figures from pandas frames, one offline HTML file.

No Spark and no storage here: :mod:`shikong.stages.report` reads the published tables and
writes the file.
"""
