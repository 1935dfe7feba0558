"""Dashboard pages and the form actions behind them.

Pages read through the domain selectors (another user's object is a 404 page); actions call the
service the API calls and come back to the page with the outcome as a message, worded by the
service. Live parts (job tables, a job's stage timeline) are small fragments the page re-fetches.
One module per area; ``urls.py`` names each view by its module.
"""
